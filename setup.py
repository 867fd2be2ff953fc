"""Packaging glue that pyproject.toml alone cannot express.

templates/ and migrations/ live at the top of the repository (DESIGN.md), yet the wheel must
carry them: they are shipped as the data-only packages ``fundcircle._templates`` and
``fundcircle._migrations``.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["fundcircle", "fundcircle.*"])
    + ["fundcircle._templates", "fundcircle._migrations"],
    package_dir={"fundcircle._templates": "templates", "fundcircle._migrations": "migrations"},
    package_data={
        "fundcircle": ["static/*.js", "static/*.css"],
        "fundcircle._templates": ["**/*.html", "**/*.svg", "**/*.js", "**/*.css", "**/*.txt"],
        "fundcircle._migrations": ["*.py", "*.mako", "*.ini", "versions/*.py"],
    },
)
