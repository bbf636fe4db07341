"""A safe calculator: arithmetic and common math functions by walking Python's AST.

No `eval`, no names but the listed constants and functions, no attributes, subscripts,
lambdas or comprehensions. Every step is bounded before it runs: expression length and
node count, digits of a literal, the size of a power's result (estimated from the
operands' magnitudes, so `9**9**9` is refused without being computed), factorial
arguments, and the size of every intermediate integer.
"""
from __future__ import annotations

import ast
import math
import operator

MAX_CHARS = 500
MAX_NODES = 200
MAX_DIGITS = 100  # of a literal in the expression
MAX_RESULT_DIGITS = 1_000  # of any integer the evaluation produces
MAX_FACTORIAL = 500


class CalcError(ValueError):
    """The expression is not allowed or cannot be computed; the message says why."""


_BIN = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: None,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _factorial(n):
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int) or n < 0:
        raise CalcError("factorial needs a whole number ≥ 0")
    if n > MAX_FACTORIAL:
        raise CalcError(f"factorial of more than {MAX_FACTORIAL} is too large")
    return math.factorial(n)


_FUNCTIONS = {
    "abs": abs, "round": round, "min": min, "max": max, "sqrt": math.sqrt, "exp": math.exp,
    "log": math.log, "log10": math.log10, "log2": math.log2, "ln": math.log,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos, "atan": math.atan,
    "floor": math.floor, "ceil": math.ceil, "factorial": _factorial, "hypot": math.hypot,
}


def calculate(expression: str) -> int | float:
    """The value of `expression`, or CalcError with a short reason."""
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if not text:
        raise CalcError("the expression is empty")
    if len(text) > MAX_CHARS:
        raise CalcError(f"the expression is longer than {MAX_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalcError("that is not an arithmetic expression") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalcError("the expression is too complex")
    try:
        return _check(_eval(tree.body))
    except CalcError:
        raise
    except ZeroDivisionError:
        raise CalcError("division by zero") from None
    except OverflowError:
        raise CalcError("the result is too large") from None
    except (ValueError, TypeError) as exc:
        raise CalcError(f"math error: {exc}") from None


def _check(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CalcError("only numbers are allowed")
    if isinstance(value, int) and value.bit_length() > MAX_RESULT_DIGITS * 3.33:
        raise CalcError("the result is too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalcError("the result is too large" if math.isinf(value) else "the result is not a number")
    return value


def _eval(node):
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise CalcError("only numbers are allowed")
        if isinstance(node.value, int) and len(str(abs(node.value))) > MAX_DIGITS:
            raise CalcError(f"numbers longer than {MAX_DIGITS} digits are not allowed")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _check(_power(left, right))
        return _check(_BIN[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalcError(f"unknown name {node.id!r}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords:
            raise CalcError("only these functions are allowed: " + ", ".join(sorted(_FUNCTIONS)))
        args = [_eval(a) for a in node.args]
        return _check(_FUNCTIONS[node.func.id](*args))
    raise CalcError(f"{type(node).__name__.lower()} is not allowed in a calculation")


def _power(base, exp):
    """base ** exp, refused when the result would have more than MAX_RESULT_DIGITS digits."""
    if abs(exp) > 10_000 and abs(base) not in (0, 1):
        raise CalcError("the exponent is too large")
    if abs(base) > 1 and exp > 0 and exp * math.log10(abs(base)) > MAX_RESULT_DIGITS:
        raise CalcError("the result is too large")
    return base ** exp


def format_number(value: int | float) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.10g}"
    return str(value)
