"""The engine's opcode loop: py-evm's computation, with the common opcodes run inline.

py-evm runs every instruction through four or five Python calls (the opcode object, its gas
charge, its logic function, the stack's typed pops and pushes). The instructions compiled
contracts are mostly made of (PUSH, DUP, SWAP, POP, JUMP/JUMPI/JUMPDEST, MLOAD/MSTORE,
arithmetic, comparisons, bit operations, SHA3, CALLDATALOAD and the call's context) are run here in
one loop over local variables instead; every other instruction (storage, logs, calls,
copies, RETURN and REVERT) is handed to py-evm's own implementation, with the loop's program
counter and gas written back first and read again after. Each inline instruction charges
py-evm's gas for it (read from py-evm's opcode table, not written here again), checks the stack
and raises the same py-evm errors in the same order, so that results, gas and errors are those of
py-evm (``tests/chain/node/test_interpreter.py`` runs both on the same programs).
"""

from __future__ import annotations

from typing import Any

from eth.exceptions import (
    FullStack,
    Halt,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfGas,
)
from eth.vm.computation import memory_gas_cost
from eth.vm.logic.invalid import InvalidOpcode
from eth_hash.auto import keccak

__all__ = ["execute", "inline_opcodes"]

_MASK = (1 << 256) - 1
_SIGN = 1 << 255
_JUMPDEST = 0x5B
_STACK_LIMIT = 1024

# What the loop does with each opcode; 0: hand it to py-evm.
_PUSH, _DUP, _SWAP, _POP, _JUMPDEST_K, _JUMP, _JUMPI = 1, 2, 3, 4, 5, 6, 7
_MLOAD, _MSTORE, _ADD, _SUB, _MUL, _DIV, _MOD = 8, 9, 10, 11, 12, 13, 14
_LT, _GT, _SLT, _SGT, _EQ, _ISZERO, _AND, _OR, _XOR, _NOT = 15, 16, 17, 18, 19, 20, 21, 22, 23, 24
_SHL, _SHR, _CALLDATALOAD, _CALLDATASIZE, _CALLVALUE, _CALLER, _ADDRESS = (
    25,
    26,
    27,
    28,
    29,
    30,
    31,
)
_STOP, _PUSH0, _MSIZE, _GAS_K, _PC, _SHA3 = 32, 33, 34, 35, 36, 37
#: Gas of each 32-byte word SHA3 hashes (the yellow paper's G_sha3word).
_SHA3_WORD_GAS = 6

#: Each opcode the loop runs inline: py-evm's mnemonic for it and the loop's kind. The loop
#: takes one only where py-evm's opcode of that number has this mnemonic (a fork that changed
#: one would fall back to py-evm's).
_INLINE: dict[int, tuple[str, int]] = {
    0x00: ("STOP", _STOP),
    0x01: ("ADD", _ADD),
    0x02: ("MUL", _MUL),
    0x03: ("SUB", _SUB),
    0x04: ("DIV", _DIV),
    0x06: ("MOD", _MOD),
    0x10: ("LT", _LT),
    0x11: ("GT", _GT),
    0x12: ("SLT", _SLT),
    0x13: ("SGT", _SGT),
    0x14: ("EQ", _EQ),
    0x15: ("ISZERO", _ISZERO),
    0x16: ("AND", _AND),
    0x17: ("OR", _OR),
    0x18: ("XOR", _XOR),
    0x19: ("NOT", _NOT),
    0x1B: ("SHL", _SHL),
    0x1C: ("SHR", _SHR),
    0x20: ("SHA3", _SHA3),
    0x30: ("ADDRESS", _ADDRESS),
    0x33: ("CALLER", _CALLER),
    0x34: ("CALLVALUE", _CALLVALUE),
    0x35: ("CALLDATALOAD", _CALLDATALOAD),
    0x36: ("CALLDATASIZE", _CALLDATASIZE),
    0x50: ("POP", _POP),
    0x51: ("MLOAD", _MLOAD),
    0x52: ("MSTORE", _MSTORE),
    0x56: ("JUMP", _JUMP),
    0x57: ("JUMPI", _JUMPI),
    0x58: ("PC", _PC),
    0x59: ("MSIZE", _MSIZE),
    0x5A: ("GAS", _GAS_K),
    0x5B: ("JUMPDEST", _JUMPDEST_K),
    0x5F: ("PUSH0", _PUSH0),
    **{op: (f"PUSH{op - 0x5F}", _PUSH) for op in range(0x60, 0x80)},
    **{op: (f"DUP{op - 0x7F}", _DUP) for op in range(0x80, 0x90)},
    **{op: (f"SWAP{op - 0x8F}", _SWAP) for op in range(0x90, 0xA0)},
}


def inline_opcodes(opcodes: dict[int, Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """For py-evm's opcode table of a fork: the loop's kind of each of the 256 opcodes (0: run
    py-evm's) and the static gas of those it runs, read from py-evm's opcodes."""
    kinds = [0] * 256
    gas = [0] * 256
    for op, (mnemonic, kind) in _INLINE.items():
        fn = opcodes.get(op)
        if fn is None or getattr(fn, "mnemonic", None) != mnemonic:
            continue
        kinds[op] = kind
        gas[op] = fn.gas_cost
    return tuple(kinds), tuple(gas)


def execute(computation: Any, kinds: tuple[int, ...], gas_of: tuple[int, ...]) -> None:
    """Run ``computation``'s code from its program counter until it halts or fails.

    Raises what py-evm's loop would (VM errors are turned into the computation's error by its
    context manager); a ``Halt`` ends the loop normally.
    """
    code = computation.code
    raw = code._raw_code_bytes
    size = len(raw)
    push_data = code._push_data
    stack = computation._stack.values
    push = stack.append
    pop = stack.pop
    meter = computation._gas_meter
    memory = computation._memory
    opcodes = computation.opcodes
    msg = computation.msg
    pc = code.program_counter
    gas = meter.gas_remaining
    try:
        while True:
            op = raw[pc] if pc < size else 0
            pc += 1
            kind = kinds[op]
            if kind == 0:
                code.program_counter = pc
                meter.gas_remaining = gas
                fn = opcodes.get(op)
                if fn is None:
                    fn = InvalidOpcode(op)
                try:
                    fn(computation=computation)
                finally:
                    pc = code.program_counter
                    gas = meter.gas_remaining
                continue
            cost = gas_of[op]
            if cost > gas:
                raise OutOfGas(f"Out of gas: Needed {cost} - Remaining {gas}")
            gas -= cost
            if kind == _PUSH:
                if len(stack) >= _STACK_LIMIT:
                    raise FullStack("Stack limit reached")
                width = op - 0x5F
                end = pc + width
                chunk = raw[pc:end]
                if len(chunk) != width:
                    chunk = chunk.ljust(width, b"\x00")
                push(int.from_bytes(chunk, "big"))
                pc = end
            elif kind in (_MLOAD, _MSTORE):
                if not stack:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                start = pop()
                if start.__class__ is not int:
                    start = int.from_bytes(start, "big")
                if kind == _MSTORE:
                    if not stack:
                        raise InsufficientStack("Wanted 1 stack item, had none")
                    value = pop()
                    if value.__class__ is int:
                        value = value.to_bytes(32, "big")
                    elif len(value) != 32:
                        value = value.rjust(32, b"\x00")[-32:]
                end = start + 32
                if end > len(memory._bytes):
                    grow = memory_gas_cost(end) - memory_gas_cost(len(memory._bytes))
                    if grow > gas:
                        raise OutOfGas(f"Out of gas: Needed {grow} - Remaining {gas}")
                    gas -= grow
                    memory.extend(start, 32)
                if kind == _MLOAD:
                    push(int.from_bytes(memory._bytes[start:end], "big"))
                else:
                    memory._bytes[start:end] = value
            elif kind == _JUMPDEST_K:
                pass
            elif kind == _DUP:
                if len(stack) >= _STACK_LIMIT:
                    raise FullStack("Stack limit reached")
                depth = op - 0x7F
                if len(stack) < depth:
                    raise InsufficientStack(f"Insufficient stack items for DUP{depth}")
                push(stack[-depth])
            elif kind == _SWAP:
                depth = op - 0x8E
                if len(stack) < depth:
                    raise InsufficientStack(f"Insufficient stack items for SWAP{depth - 1}")
                stack[-1], stack[-depth] = stack[-depth], stack[-1]
            elif kind in (_JUMP, _JUMPI):
                if kind == _JUMP:
                    if not stack:
                        raise InsufficientStack("Wanted 1 stack item, had none")
                    dest = pop()
                    taken = True
                else:
                    if len(stack) < 2:
                        raise InsufficientStack(f"Wanted 2 stack items, only had {len(stack)}")
                    dest = pop()
                    taken = pop()
                    if taken.__class__ is not int:
                        taken = int.from_bytes(taken, "big")
                if taken:
                    if dest.__class__ is not int:
                        dest = int.from_bytes(dest, "big")
                    pc = dest
                    if dest >= size or raw[dest] != _JUMPDEST:
                        raise InvalidJumpDestination("Invalid Jump Destination")
                    if dest in push_data:
                        raise InvalidInstruction("Jump resulted in invalid instruction")
            elif kind == _PUSH0:
                if len(stack) >= _STACK_LIMIT:
                    raise FullStack("Stack limit reached")
                push(0)
            elif kind == _POP:
                if not stack:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                pop()
            elif kind in (_ISZERO, _NOT):
                if not stack:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                a = stack[-1]
                if a.__class__ is not int:
                    a = int.from_bytes(a, "big")
                stack[-1] = (0 if a else 1) if kind == _ISZERO else _MASK ^ a
            elif kind == _CALLDATALOAD:
                if not stack:
                    raise InsufficientStack("Wanted 1 stack item, had none")
                start = pop()
                if start.__class__ is not int:
                    start = int.from_bytes(start, "big")
                word = msg.data_as_bytes[start : start + 32]
                if len(word) != 32:
                    word = word.ljust(32, b"\x00")
                push(int.from_bytes(word, "big"))
            elif kind <= _SHR:
                # Binary operations: a is the top of the stack, b the item under it.
                if len(stack) < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {len(stack)}")
                a = pop()
                b = stack[-1]
                if a.__class__ is not int:
                    a = int.from_bytes(a, "big")
                if b.__class__ is not int:
                    b = int.from_bytes(b, "big")
                if kind == _ADD:
                    r = (a + b) & _MASK
                elif kind == _SUB:
                    r = (a - b) & _MASK
                elif kind == _LT:
                    r = 1 if a < b else 0
                elif kind == _GT:
                    r = 1 if a > b else 0
                elif kind == _EQ:
                    r = 1 if a == b else 0
                elif kind == _AND:
                    r = a & b
                elif kind == _OR:
                    r = a | b
                elif kind == _XOR:
                    r = a ^ b
                elif kind == _SHR:
                    r = b >> a if a < 256 else 0
                elif kind == _SHL:
                    r = (b << a) & _MASK if a < 256 else 0
                elif kind == _MUL:
                    r = (a * b) & _MASK
                elif kind == _DIV:
                    r = a // b if b else 0
                elif kind == _MOD:
                    r = a % b if b else 0
                else:  # SLT, SGT: two's complement
                    if a & _SIGN:
                        a -= 1 << 256
                    if b & _SIGN:
                        b -= 1 << 256
                    r = (1 if a < b else 0) if kind == _SLT else (1 if a > b else 0)
                stack[-1] = r
            elif kind == _SHA3:
                # py-evm's sha3 and extend_memory: memory grows (and is paid for) only for a
                # non-empty input; then each word of the input is paid for.
                if len(stack) < 2:
                    raise InsufficientStack(f"Wanted 2 stack items, only had {len(stack)}")
                start = pop()
                length = pop()
                if start.__class__ is not int:
                    start = int.from_bytes(start, "big")
                if length.__class__ is not int:
                    length = int.from_bytes(length, "big")
                if length:
                    grow = memory_gas_cost(start + length) - memory_gas_cost(len(memory._bytes))
                    if grow > 0:
                        if grow > gas:
                            raise OutOfGas(f"Out of gas: Needed {grow} - Remaining {gas}")
                        gas -= grow
                    memory.extend(start, length)
                cost = _SHA3_WORD_GAS * ((length + 31) // 32)
                if cost > gas:
                    raise OutOfGas(f"Out of gas: Needed {cost} - Remaining {gas}")
                gas -= cost
                push(keccak(bytes(memory._bytes[start : start + length])))
            elif kind == _STOP:
                raise Halt("STOP")
            else:
                if len(stack) >= _STACK_LIMIT:
                    raise FullStack("Stack limit reached")
                if kind == _CALLER:
                    push(msg.sender)
                elif kind == _CALLVALUE:
                    push(msg.value)
                elif kind == _CALLDATASIZE:
                    push(len(msg.data))
                elif kind == _ADDRESS:
                    push(msg.storage_address)
                elif kind == _MSIZE:
                    push(len(memory._bytes))
                elif kind == _GAS_K:
                    push(gas)
                else:  # PC
                    push(pc - 1)
    finally:
        code.program_counter = pc
        meter.gas_remaining = gas
