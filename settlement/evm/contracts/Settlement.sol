// SPDX-License-Identifier: Apache-2.0
// NoirLedger settlement: deposits of the token name the account they credit (sha256 of its DID); payouts are
// paid in batches whose RFC 6962 Merkle root (sha256, leaf 0x00 / node 0x01) this contract recomputes from
// the receipts it pays. A batch whose root does not match is refused; a receipt is paid at most once.
pragma solidity ^0.8.24;

interface IERC20 {
    function balanceOf(address owner) external view returns (uint256);
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

contract Settlement {
    IERC20 public immutable token;
    address public immutable operator;
    mapping(bytes32 => bool) public batchPaid;
    mapping(bytes32 => bool) public receiptPaid;

    /// `amount` is what this contract received, whatever the caller asked to send.
    event Deposit(bytes32 indexed account, address indexed from, uint256 amount);
    event PayoutBatch(bytes32 indexed root, uint256 total, uint256 count);

    error NotOperator();
    error ZeroAmount();
    error TransferFailed();
    error EmptyBatch();
    error LengthMismatch();
    error RootMismatch(bytes32 expected, bytes32 computed);
    error BatchAlreadyPaid(bytes32 root);
    error ReceiptAlreadyPaid(bytes32 receipt);

    constructor(IERC20 token_, address operator_) {
        token = token_;
        operator = operator_;
    }

    function deposit(bytes32 account, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint256 before = token.balanceOf(address(this));
        if (!token.transferFrom(msg.sender, address(this), amount)) revert TransferFailed();
        uint256 received = token.balanceOf(address(this)) - before;
        if (received == 0) revert ZeroAmount();
        emit Deposit(account, msg.sender, received);
    }

    /// Pays receipt i `amounts[i]` to `payees[i]`. Leaf i is
    /// receipts[i] || accounts[i] || amounts[i] (32 bytes, big-endian) || payees[i] (20 bytes).
    function payBatch(
        bytes32 root,
        bytes32[] calldata receipts,
        bytes32[] calldata accounts,
        uint256[] calldata amounts,
        address[] calldata payees
    ) external {
        if (msg.sender != operator) revert NotOperator();
        uint256 n = receipts.length;
        if (n == 0) revert EmptyBatch();
        if (accounts.length != n || amounts.length != n || payees.length != n) revert LengthMismatch();
        if (batchPaid[root]) revert BatchAlreadyPaid(root);

        bytes32[] memory level = new bytes32[](n);
        uint256 total = 0;
        for (uint256 i = 0; i < n; i++) {
            if (receiptPaid[receipts[i]]) revert ReceiptAlreadyPaid(receipts[i]);
            receiptPaid[receipts[i]] = true;
            if (amounts[i] == 0) revert ZeroAmount();
            total += amounts[i];
            level[i] = sha256(abi.encodePacked(bytes1(0x00), receipts[i], accounts[i], amounts[i], payees[i]));
        }
        // bottom-up: pair neighbours, an unpaired last node moves up unchanged (the same tree as RFC 6962)
        while (n > 1) {
            uint256 m = 0;
            for (uint256 i = 0; i + 1 < n; i += 2) {
                level[m++] = sha256(abi.encodePacked(bytes1(0x01), level[i], level[i + 1]));
            }
            if (n % 2 == 1) level[m++] = level[n - 1];
            n = m;
        }
        if (level[0] != root) revert RootMismatch(root, level[0]);
        batchPaid[root] = true;

        for (uint256 i = 0; i < receipts.length; i++) {
            if (!token.transfer(payees[i], amounts[i])) revert TransferFailed();
        }
        emit PayoutBatch(root, total, receipts.length);
    }
}
