"""Packaging glue that pyproject.toml alone cannot express.

templates/ and migrations/ live at the top of the repository (DESIGN.md), yet the wheel must
carry them: they are shipped as the data-only packages ``fundcircle._templates`` and
``fundcircle._migrations``.

``fundcircle.ledger._native_verify`` is an optional C extension (the fast "confirm clean" pass of
``verify``, fundcircle/ledger/README.md): without a compiler or the SQLite/OpenSSL headers the
install still succeeds and ``verify`` uses its Python pass. ``fundcircle.voting.rules._mes_float_c``
is optional too (the compiled certified float run of ``mes``, fundcircle/voting/rules/mes_float.py):
without it the numpy code runs, with the same results.
"""

from pathlib import Path

from setuptools import Extension, find_packages, setup


def _data_packages(package: str, directory: str) -> list[str]:
    """``package`` and one package name per folder below ``directory``: setuptools wants every
    folder it ships files from named in ``packages``, else it warns once per folder on install."""
    root = Path(__file__).resolve().parent / directory
    return [package] + sorted(f"{package}." + ".".join(folder.relative_to(root).parts)
                              for folder in root.rglob("*") if folder.is_dir() and folder.name != "__pycache__")


setup(
    packages=find_packages(include=["fundcircle", "fundcircle.*"])
    + _data_packages("fundcircle.static", "fundcircle/static")
    + _data_packages("fundcircle._templates", "templates")
    + _data_packages("fundcircle._migrations", "migrations"),
    package_dir={"fundcircle._templates": "templates", "fundcircle._migrations": "migrations"},
    package_data={
        "fundcircle": ["static/*.js", "static/*.css"],
        "fundcircle._templates": ["**/*.html", "**/*.svg", "**/*.js", "**/*.css", "**/*.txt"],
        "fundcircle._migrations": ["*.py", "*.mako", "*.ini", "versions/*.py"],
    },
    ext_modules=[Extension("fundcircle.ledger._native_verify", ["fundcircle/ledger/_native_verify.c"],
                           libraries=["sqlite3", "crypto"], extra_compile_args=["-O2"], optional=True),
                 # rounding must be each operation's own: no fused multiply-add, no reordering
                 Extension("fundcircle.voting.rules._mes_float_c", ["fundcircle/voting/rules/_mes_float_c.c"],
                           extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math"], optional=True)],
)
