"""Comparing two parameter files, one tensor at a time.

:func:`compare_files` is what ``nnabla-modules diff`` prints: keys only in one
file, shape, dtype and ``need_grad`` mismatches, and for every shared tensor
how many elements differ and by how much. Values are read one tensor at a time
and compared in slices, so the memory needed is about the two largest tensors,
whatever the size of the files.

Example:

    >>> import numpy as np
    >>> from nnabla_modules import files
    >>> from nnabla_modules.compare import compare_files
    >>> files.write_parameters("a.h5", {"w": np.array([1.0, 2.0, 3.0], np.float32)})
    >>> files.write_parameters("b.h5", {"w": np.array([1.0, 2.5, 3.0], np.float32)})
    >>> with files.open_parameters("a.h5") as a, files.open_parameters("b.h5") as b:
    ...     report = compare_files(a, b)
    >>> report["equal"], report["value_differences"][0]["differing"]
    (False, 1)
"""

from collections import OrderedDict

import numpy as np

__all__ = ["compare_files", "compare_values"]

#: Elements compared at once (in float64): bounds the memory beyond the two tensors.
SLICE = 1 << 16


def compare_files(a, b, atol=0.0, rtol=0.0, progress=None):
    """Compares two opened files (:func:`nnabla_modules.files.open_parameters` results).

    Two values are equal when ``|b - a| <= atol + rtol * |b|`` (``numpy.isclose``'s
    rule), or both are NaN, or both are the same infinity.

    Args:
        a (mapping): key -> :class:`~nnabla_modules.files.StoredParameter` of the first file.
        b (mapping): the same of the second.
        atol (float): Absolute tolerance (>= 0).
        rtol (float): Relative tolerance (>= 0).
        progress (callable, optional): Called with the bytes read after each tensor.

    Returns:
        OrderedDict: JSON-able: ``only_in_a``, ``only_in_b``, ``shape_mismatches``,
        ``dtype_mismatches``, ``need_grad_mismatches``, ``value_differences``
        (one entry per tensor with differing elements, see :func:`compare_values`),
        ``compared`` (tensors), ``compared_elements``, ``differing_elements``,
        ``largest_abs_diff`` (key and value) and ``equal``.
    """
    if not (atol >= 0 and rtol >= 0):  # also refuses NaN
        raise ValueError(f"atol and rtol must be >= 0, not {atol!r} and {rtol!r}")
    shared = [k for k in a if k in b]
    same_shape = [k for k in shared if a[k].shape == b[k].shape]
    report = OrderedDict(
        only_in_a=[_key_json(a[k]) for k in a if k not in b],
        only_in_b=[_key_json(b[k]) for k in b if k not in a],
        shape_mismatches=[
            _pair_json(k, list(a[k].shape), list(b[k].shape))
            for k in shared
            if a[k].shape != b[k].shape
        ],
        dtype_mismatches=[
            _pair_json(k, str(a[k].dtype), str(b[k].dtype))
            for k in same_shape
            if a[k].dtype != b[k].dtype
        ],
        need_grad_mismatches=[
            _pair_json(k, a[k].need_grad, b[k].need_grad)
            for k in shared
            if a[k].need_grad != b[k].need_grad
        ],
    )
    differences, largest = [], None
    for key in same_shape:
        x, y = a[key].read(), b[key].read()  # one pair of tensors in memory at a time
        stats = compare_values(x, y, atol, rtol)
        if progress is not None:
            progress(x.nbytes + y.nbytes)
        del x, y
        if stats["differing"]:
            differences.append(OrderedDict(key=key, **stats))
        if largest is None or _sort_value(stats["max_abs_diff"]) > _sort_value(largest[1]):
            largest = (key, stats["max_abs_diff"])
    report["compared"] = len(same_shape)
    report["compared_elements"] = sum(a[k].size for k in same_shape)
    report["differing_elements"] = sum(d["differing"] for d in differences)
    report["value_differences"] = differences
    report["largest_abs_diff"] = (
        OrderedDict(key=largest[0], value=largest[1]) if largest is not None else None
    )
    kinds = (
        "only_in_a",
        "only_in_b",
        "shape_mismatches",
        "dtype_mismatches",
        "need_grad_mismatches",
        "value_differences",
    )
    report["equal"] = not any(report[kind] for kind in kinds)
    return report


def compare_values(x, y, atol=0.0, rtol=0.0):
    """How two arrays of one shape differ, computed in float64 slices of :data:`SLICE`
    (``longdouble`` for 64-bit integers and ``longdouble`` values).

    Args:
        x (numpy.ndarray): The first array (file A).
        y (numpy.ndarray): The second array (file B), of the same shape.
        atol (float): Absolute tolerance: elements differing by at most
            ``atol + rtol * |x|`` are equal.
        rtol (float): Relative tolerance, as for :func:`numpy.isclose`.

    Returns:
        OrderedDict: ``differing`` (elements not equal by the rule of
        :func:`compare_files`), ``size``, ``max_abs_diff`` (NaN where one side
        alone is NaN, infinite where one side alone is infinite), and ``min_diff``,
        ``max_diff``, ``mean_diff`` of ``y - x`` over the elements where both are
        finite (None when there are none).
    """
    x, y = np.ravel(x), np.ravel(y)
    exact = _exact_in_float64(x.dtype) and _exact_in_float64(y.dtype)
    work = np.float64 if exact else np.longdouble
    differing, count, total, peak = 0, 0, 0.0, 0.0
    low, high, nan, inf = np.inf, -np.inf, False, False
    for start in range(0, x.size, SLICE):
        xs = x[start : start + SLICE].astype(work)
        ys = y[start : start + SLICE].astype(work)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = ys - xs
            same = (np.isnan(xs) & np.isnan(ys)) | (np.isinf(xs) & (xs == ys))
            diff[same] = 0.0
            close = same | (np.abs(diff) <= atol + rtol * np.abs(ys))
        differing += int(xs.size - np.count_nonzero(close))
        finite = np.isfinite(xs) & np.isfinite(ys)
        values = diff[finite]
        if values.size:
            low, high = min(low, float(values.min())), max(high, float(values.max()))
            count, total = count + values.size, total + float(values.sum())
        nan = nan or bool(np.isnan(diff).any())
        inf = inf or bool(np.isinf(diff).any())
        if not (nan or inf) and diff.size:
            peak = max(peak, float(np.abs(diff).max()))
    return OrderedDict(
        differing=differing,
        size=int(x.size),
        max_abs_diff=float("nan") if nan else float("inf") if inf else peak,
        min_diff=low if count else None,
        max_diff=high if count else None,
        mean_diff=total / count if count else None,
    )


def _exact_in_float64(dtype):
    """Whether float64 holds every value of ``dtype``: not so for integers past 2**53 and
    ``longdouble``, which are compared in ``longdouble`` (exact for 64-bit integers where it
    has a 64-bit mantissa, as on x86), so that values differing there never compare equal."""
    return dtype.kind == "b" or dtype.itemsize <= (8 if dtype.kind == "f" else 4)


def _key_json(param):
    return OrderedDict(key=param.name, shape=list(param.shape))


def _pair_json(key, a, b):
    return OrderedDict(key=key, a=a, b=b)


def _sort_value(value):
    return np.inf if np.isnan(value) else value
