# pragma version ~=0.4.3
"""
@title Vehicle Wallet Factory
@custom:contract-name vehicle_wallet_factory
@license GNU Affero General Public License v3.0 only
@notice Creates the vehicle wallets (`vehicle_wallet`) of the platform's
        vehicles from one EIP-5202 blueprint, each bound to the
        platform's vehicle registry, merchant registry and checkout, and
        records them: at most one wallet per vehicle, created by the
        vehicle's owner. `WalletCreated` is how the platform's ledger finds
        the wallets (and so their spends) from the chain alone. Whoever
        owns the title controls its wallet, so a wallet follows the car
        when it is sold.
        External functions:
        - `createWallet` (the vehicle's owner),
        - `walletOf`, `blueprint`, `vehicles`, `merchants`, `checkout`
          (views).
"""


# @dev What this contract reads from the vehicle registry.
interface IVehicleRegistry:
    def ownerOf(token_id: uint256) -> address: view


# @dev Emitted when a vehicle's owner creates its wallet.
event WalletCreated:
    wallet: indexed(address)
    title: indexed(uint256)
    creator: indexed(address)
    device_key: address


# @dev The EIP-5202 blueprint of `vehicle_wallet`.
blueprint: public(immutable(address))
# @dev The registries and checkout every wallet is bound to.
vehicles: public(immutable(IVehicleRegistry))
merchants: public(immutable(address))
checkout: public(immutable(address))
# @dev The wallet of each vehicle (the zero address if none).
walletOf: public(HashMap[uint256, address])


@deploy
def __init__(blueprint_: address, vehicles_: address, merchants_: address, checkout_: address):
    """
    @dev Binds the factory to the wallet's blueprint and to the contracts
         every wallet it creates is bound to.
    @notice Anyone may deploy it; refuses zero addresses.
    @param blueprint_ The address of `vehicle_wallet`'s EIP-5202 blueprint.
    @param vehicles_ The vehicle registry.
    @param merchants_ The merchant registry.
    @param checkout_ The checkout the wallets' device keys pay through.
    """
    assert blueprint_ != empty(address), "vehicle_wallet_factory: zero address"
    assert vehicles_ != empty(address), "vehicle_wallet_factory: zero address"
    assert merchants_ != empty(address), "vehicle_wallet_factory: zero address"
    assert checkout_ != empty(address), "vehicle_wallet_factory: zero address"
    blueprint = blueprint_
    vehicles = IVehicleRegistry(vehicles_)
    merchants = merchants_
    checkout = checkout_


@external
def createWallet(title: uint256, device_key: address) -> address:
    """
    @dev Creates the wallet of the vehicle `title` with the car's
         `device_key`, which spends nothing until the owner allows it.
         Emits `WalletCreated`.
    @notice Only the vehicle's current owner. Refuses a vehicle that has
            a wallet already and an unknown title (the registry reverts).
    @param title The vehicle's title id.
    @param device_key The 20-byte address of the car's key (zero for none).
    @return address The new wallet.
    """
    assert staticcall vehicles.ownerOf(title) == msg.sender, (
        "vehicle_wallet_factory: caller is not the vehicle's owner"
    )
    assert self.walletOf[title] == empty(address), "vehicle_wallet_factory: the vehicle has a wallet"
    wallet: address = create_from_blueprint(
        blueprint, vehicles.address, title, merchants, checkout, device_key
    )
    self.walletOf[title] = wallet
    log WalletCreated(wallet=wallet, title=title, creator=msg.sender, device_key=device_key)
    return wallet
