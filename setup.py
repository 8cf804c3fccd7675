"""Maps the repository's folders onto the single ``toolgym.*`` namespace.

pyproject.toml holds all metadata; this file only computes the package list so a
new sub-package never needs registering by hand. ``toolgym`` itself is a regular package
(``protos/toolgym/__init__.py``), so a bare ``import env`` or ``import evals`` never exists.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "toolgym.env": "env",
    "toolgym.trainer": "trainer",
    "toolgym.evals": "evals",
    "toolgym.v1": "protos/toolgym/v1",
}


def _packages() -> tuple[list[str], dict[str, str]]:
    # The top package: protos/toolgym holds its __init__ (it registers the Gymnasium env).
    packages: list[str] = ["toolgym"]
    package_dir: dict[str, str] = {"toolgym": "protos/toolgym"}
    here = Path(__file__).parent
    for name, folder in ROOTS.items():
        root = here / folder
        for init in sorted(root.rglob("__init__.py")):
            rel = init.parent.relative_to(root)
            pkg = ".".join([name, *rel.parts]) if rel.parts else name
            packages.append(pkg)
            package_dir[pkg] = str(Path(folder, *rel.parts))
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()

setup(
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={"toolgym.v1": ["*.proto", "*.pyi"], "toolgym.env": ["data/*", "py.typed"],
                  "toolgym.env.server.http": ["static/*"]},  # the dashboard page, its script and style
    include_package_data=True,
)
