"""Who may do what: API keys today; users, credentials, MFA and key custody to come."""

from carpay.accounts.api_keys import SCOPES, ApiKeys, NewApiKey, Principal
from carpay.accounts.platform import operator_account, relayer_account

__all__ = ["SCOPES", "ApiKeys", "NewApiKey", "Principal", "operator_account", "relayer_account"]
