"""The `pytest11` entry point of the installed package (pyproject.toml): loads sluice's pytest
plugin, sluice.pytest_plugin (`pytest --sluice <dir>`, its fixtures), through pytest_plugins. A
package without that module (a build of a branch that lacks it) loads nothing instead of
stopping every pytest run in the environment with an ImportError."""
import importlib.util

pytest_plugins = ["sluice.pytest_plugin"] if importlib.util.find_spec("sluice.pytest_plugin") else []
