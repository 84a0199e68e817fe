# Copyright 2026 hybrid_pose_ros maintainers. MIT License.
"""
docs/parameters.md and the README list the parameters the code defines, with its defaults.

``python test/test_docs_parameters.py > docs/parameters.md`` writes the document from
``hybrid_pose_ros/ros/parameters.py`` (the 2D node) and ``PARAMETERS_3D`` in
``hybrid_pose_ros/ros/node_3d.py`` (the 3D node).
"""
import pathlib

from hybrid_pose_ros.ros.parameters import PARAMETERS, ParameterSpec
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = REPO_ROOT / 'docs' / 'parameters.md'
NODE_HEADING = '## hybrid_pose_node'
NODE_3D_HEADING = '## hybrid_pose_3d_node'

INTRO = """# Parameters

The node parameters, their defaults and what they mean, as defined in
`hybrid_pose_ros/ros/parameters.py` (`hybrid_pose_node`) and `PARAMETERS_3D` in
`hybrid_pose_ros/ros/node_3d.py` (`hybrid_pose_3d_node`). `test/test_docs_parameters.py` fails
when this page and the code disagree on a name or a default; regenerate the page with
`.venv/bin/python test/test_docs_parameters.py > docs/parameters.md`.

Set them in a parameter file (`config/hybrid.yaml` lists every one with its default; pass
another with the launch argument `params_file:=FILE`) or on the command line
(`ros2 run hybrid_pose_ros hybrid_pose_node --ros-args -p NAME:=VALUE`). A bad value stops the
node at startup with one message naming the parameter (exit status 2). At runtime
(`ros2 param set`) an invalid value is refused with the reason, and so is a change of a
parameter read only at startup (the model, input, QoS and bin settings).
"""

NODE_3D_INTRO = """`multi_camera.launch.py` sets `cameras`, `pose_topics`, `calibration_files` and
`frame_ids` from `config/multi_camera.yaml` and passes the settings under its
`hybrid_pose_3d_node` key. The calibration schema is in
`hybrid_pose_ros/geometry/calibration.py`.
"""


def default_text(spec: ParameterSpec) -> str:
    """Return a default as the page writes it: Python's repr, an unset string list as []."""
    return '[]' if spec.default is None else repr(spec.default)


def table(specs: tuple[ParameterSpec, ...]) -> str:
    """Return the markdown table of ``specs``: name, default, meaning."""
    rows = ['| name | default | meaning |', '|---|---|---|']
    rows += [f'| `{spec.name}` | `{default_text(spec)}` | {spec.meaning.replace("|", "/")} |'
             for spec in specs]
    return '\n'.join(rows) + '\n'


def render(specs_3d: tuple[ParameterSpec, ...]) -> str:
    """Return docs/parameters.md as generated from the code."""
    return (f'{INTRO}\n{NODE_HEADING}\n\n{table(PARAMETERS)}\n{NODE_3D_HEADING}\n\n'
            f'{NODE_3D_INTRO}\n{table(specs_3d)}')


def documented(text: str, heading: str) -> dict[str, str]:
    """Return ``{name: default}`` from the table under ``heading`` (to the next heading)."""
    section = text.split(heading + '\n', 1)[1].split('\n## ', 1)[0]
    rows = [line.split('|')[1:3] for line in section.splitlines() if line.startswith('| `')]
    return {name.strip().strip('`'): default.strip().strip('`') for name, default in rows}


def test_parameters_page_lists_every_node_parameter_with_its_default():
    expected = {spec.name: default_text(spec) for spec in PARAMETERS}
    assert documented(DOC.read_text(), NODE_HEADING) == expected, (
        'docs/parameters.md disagrees with hybrid_pose_ros/ros/parameters.py; regenerate it '
        'with: .venv/bin/python test/test_docs_parameters.py > docs/parameters.md')


def test_parameters_page_lists_every_3d_node_parameter_with_its_default():
    pytest.importorskip('rclpy')
    from hybrid_pose_ros.ros.node_3d import PARAMETERS_3D
    expected = {spec.name: default_text(spec) for spec in PARAMETERS_3D}
    assert documented(DOC.read_text(), NODE_3D_HEADING) == expected, (
        'docs/parameters.md disagrees with PARAMETERS_3D in hybrid_pose_ros/ros/node_3d.py; '
        'regenerate it with: .venv/bin/python test/test_docs_parameters.py > '
        'docs/parameters.md')


def test_readme_parameters_are_the_codes_with_its_defaults():
    readme = (REPO_ROOT / 'README.md').read_text()
    listed = documented(readme, '## Parameters')
    assert listed, 'the README lists no parameters'
    by_name = {spec.name: default_text(spec) for spec in PARAMETERS}
    assert {name: by_name.get(name) for name in listed} == listed


if __name__ == '__main__':
    from hybrid_pose_ros.ros.node_3d import PARAMETERS_3D
    print(render(PARAMETERS_3D), end='')
