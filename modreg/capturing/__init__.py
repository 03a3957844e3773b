"""Parts of any PyTorch model as modreg modules: capture one, swap a module in.

- :func:`capture`: forward hooks on a submodule record its calls as rows of named, typed
  ports (:class:`Capture`): a table to save or distil, and, with ``call=``, a live teacher
  distillation queries (``modreg.distill.distill_module(cap, out=...)``).
- :func:`swap`: a copy of the model with the submodule replaced by a built module (usually
  the equation distilled from it); ``modreg.check.replace_in`` then compares the two whole
  models on the user's batches; :func:`save_swaps` writes what was swapped where (module
  names, versions, digests) and :func:`reapply_swaps` makes the same swaps again from it.

The package is named ``capturing`` so that ``modreg.capture`` stays the function (a package
of that name would shadow it once imported).
"""

from modreg.capturing._capture import Capture, capture
from modreg.capturing._swap import SwappedPart, SwapRecord, reapply_swaps, save_swaps, swap

__all__ = [
    "Capture",
    "SwapRecord",
    "SwappedPart",
    "capture",
    "reapply_swaps",
    "save_swaps",
    "swap",
]
