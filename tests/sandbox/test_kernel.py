"""The in-container kernel's pure parts, run here on the host (trusted test code only)."""

from __future__ import annotations

from ossa.sandbox.kernel import Capture, Kernel, cap


def test_capture_keeps_head_and_tail_and_counts_the_rest() -> None:
    capture = Capture(half=4)
    for chunk in (b"abc", b"defgh", b"ijklmn"):
        capture.add(chunk)
    assert capture.dropped == 14 - 8
    assert capture.text() == "abcd\n[... 6 bytes of output truncated ...]\nklmn"


def test_capture_short_output_is_whole_and_invalid_utf8_is_replaced() -> None:
    capture = Capture(half=100)
    capture.add("é ".encode() + b"\xff")
    assert capture.text() == "é \ufffd"
    assert capture.dropped == 0


def test_cap_marks_what_it_cut() -> None:
    assert cap(None, 3) is None
    assert cap("abcdef", 3) == "abcdef"
    assert cap("abcdefgh", 3) == "abc\n[... 2 characters truncated ...]\nfgh"


def test_kernel_keeps_state_and_shows_the_last_expression() -> None:
    kernel = Kernel(half=1000)
    assert kernel.run("x = 20") == (None, None)
    assert kernel.run("x += 1\nx * 2") == ("42", None)
    assert kernel.run("None") == (None, None)
    assert kernel.run("'a' + 'b'") == ("'ab'", None)


def test_kernel_reports_errors_with_the_cell_source() -> None:
    kernel = Kernel(half=1000)
    result, error = kernel.run("def f():\n    return 1 / 0\nf()")
    assert result is None
    assert 'File "<cell-1>", line 2, in f' in error
    assert "return 1 / 0" in error
    assert error.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "kernel" not in error.lower()  # the kernel's own frame is not shown


def test_kernel_reports_syntax_errors_without_running_anything() -> None:
    kernel = Kernel(half=1000)
    result, error = kernel.run("y = 1\ndef f(:")
    assert result is None and "SyntaxError" in error and "<cell-1>" in error
    assert kernel.run("y")[1].rstrip().endswith("NameError: name 'y' is not defined")


def test_system_exit_is_an_error_not_an_exit() -> None:
    _result, error = Kernel(half=1000).run("import sys; sys.exit(3)")
    assert "SystemExit: 3" in error
