"""The task registry: one object per task, what each declares, and that no other module branches on tasks."""

import ast
from pathlib import Path

import numpy as np
import pytest

from unetkit.config import TASKS as TASK_NAMES
from unetkit.config import RunConfig, apply_overrides
from unetkit.errors import InputError
from unetkit.tasks import TASKS, get_task

PACKAGE = Path(__file__).resolve().parents[2] / "unetkit"


def test_registry_matches_the_config_names_and_declares_each_task():
    assert tuple(TASKS) == TASK_NAMES
    expected = {"binary": ("val_dice", "softmax"), "instances": ("val_dsb_score", "softmax"),
                "multiclass": ("val_mean_dice", "softmax"), "regression": ("val_psnr", "none")}
    assert {name: (t.score_key, t.activation) for name, t in TASKS.items()} == expected
    config = apply_overrides(RunConfig(), {"task": "instances"})
    assert get_task(config) is TASKS["instances"]
    assert get_task(config).target_kind(config) == "three-class"
    assert get_task("binary").target_kind(apply_overrides(RunConfig(), {"data.target": "three-class"})) == "three-class"
    with pytest.raises(InputError, match="unknown task 'cells'; choose one of binary, instances"):
        get_task("cells")


def test_results_per_task():
    probs = np.zeros((3, 4, 5), np.float32)
    probs[0], probs[1, :2], probs[2, 2:] = 0.2, 0.8, 0.8  # interior above, boundary below
    config = apply_overrides(RunConfig(), {"task": "instances", "postprocess.min_size": 1})
    result = TASKS["instances"].result(probs, config)
    np.testing.assert_allclose(result.foreground, 0.8)
    assert result.mask.all() and result.labels is not None and result.num_objects >= 1
    assert [row["id"] for row in result.measure()] == list(range(1, result.num_objects + 1))
    rgb = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)  # (H, W, 3) as predict takes it, not refused
    rows = result.measure(rgb)
    assert rows == result.measure(np.moveaxis(rgb, -1, 0)) and "mean_intensity_2" in rows[0]
    binary = TASKS["binary"].result(probs[:2], apply_overrides(RunConfig(), {}))
    assert binary.labels is None
    with pytest.raises(InputError, match="no instance labels"):
        binary.measure()
    regression = apply_overrides(RunConfig(), {"task": "regression", "data.target_offset": [10.0],
                                               "data.target_scale": [2.0]})
    transform = TASKS["regression"].output_transform(regression)
    np.testing.assert_allclose(transform(np.ones((2, 1, 3, 3), np.float32)), 12.0)  # x * scale + offset


def _sources(folder: str):
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        yield path, ast.parse(path.read_text())


def _imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        return [f"{module}.{alias.name}" for alias in node.names] if module == "unetkit" else [module]
    return [alias.name for alias in node.names] if isinstance(node, ast.Import) else []


def test_inference_never_imports_training():
    for path, tree in _sources("inference"):
        for node in ast.walk(tree):
            assert not any(m.startswith("unetkit.training") for m in _imported_modules(node)), f"{path}:{node.lineno}"


BELOW_INFERENCE = ("data", "transforms", "models", "losses", "metrics")  # the building blocks of both paths


def test_dependencies_point_down_the_layout():
    """The layers under inference and training (STYLE.md's layout) never reach up into training, the exporters,
    the CLI, the integrations or the API (an exported model is read by ``unetkit.inference.exported``), and the
    building blocks never into inference (a box of an image is read by ``unetkit.data.regions``)."""
    upper = ("unetkit.training", "unetkit.export", "unetkit.cli", "unetkit.integrations", "unetkit.api",
             "unetkit.demo")
    offenders = []
    for folder in ("inference", "metrics", "models", "data", "transforms", "losses", "tasks", "safety", "cpu",
                   "visualize"):
        for path, tree in _sources(folder):
            for node in ast.walk(tree):
                for module in _imported_modules(node):
                    reach = upper if folder not in BELOW_INFERENCE else (*upper, "unetkit.inference")
                    if any(module == top or module.startswith(top + ".") for top in reach):
                        offenders.append(f"{path}:{node.lineno} imports {module}")
    assert not offenders


def test_only_the_tasks_package_compares_task_names():
    """``if config.task == ...`` or ``if task.name == ...`` belongs in unetkit/tasks; elsewhere code asks the task
    object (its attributes and methods)."""

    from unetkit.config import TASKS

    def names_a_task(node: ast.AST) -> bool:
        if not isinstance(node, ast.Attribute):
            return False
        if node.attr == "task":
            return True
        return node.attr == "name" and isinstance(node.value, ast.Attribute | ast.Name) and (
            getattr(node.value, "attr", None) == "task" or getattr(node.value, "id", None) == "task")

    def is_task_name(node: ast.AST) -> bool:  # "instances", or a tuple / list of task names
        if isinstance(node, ast.Constant):
            return node.value in TASKS
        return isinstance(node, ast.Tuple | ast.List | ast.Set) and any(is_task_name(e) for e in node.elts)

    offenders = []
    for path, tree in _sources("."):
        if "tasks" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            named = any(isinstance(n, ast.Attribute) and n.attr == "name" for n in sides)
            if any(names_a_task(n) for n in sides) or (named and any(is_task_name(n) for n in sides)):
                offenders.append(f"{path}:{node.lineno}")
    assert not offenders


def test_class_folders_are_distinct_for_any_class_names():
    """Classes "α" and "β" both became probabilities/class/ (the last overwrote the first); "nuclei ü" became
    "nuclei"."""
    from unetkit.tasks.multiclass import folder_names, safe_name

    assert safe_name("mitochondrial boundaries") == "mitochondrial_boundaries" and safe_name("nuclei ü") == "nuclei_ü"
    assert folder_names(["bg", "α", "β"]) == ["bg", "α", "β"]
    names = folder_names(["background", "a b", "a_b", "A_B", "??"])
    assert len(set(names)) == len({name.lower() for name in names}) == 5 and names[0] == "background"
    names = folder_names(["a b", "a_b", "a_b_1"])  # a suffix that is another class's own name
    assert len({name.lower() for name in names}) == 3
