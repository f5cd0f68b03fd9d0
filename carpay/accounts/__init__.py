"""Who may do what: API keys, the platform's own keys and the keys it holds for participants;
users, credentials, MFA and custody for real participants to come."""

from carpay.accounts.api_keys import SCOPES, ApiKeys, NewApiKey, Principal
from carpay.accounts.custody import Keyring
from carpay.accounts.platform import operator_account, relayer_account

__all__ = [
    "SCOPES",
    "ApiKeys",
    "Keyring",
    "NewApiKey",
    "Principal",
    "operator_account",
    "relayer_account",
]
