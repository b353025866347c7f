"""`manage.py import_ceremony`: id alone on stdout, all or nothing (README, Configuration)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, ManagementUtility, call_command

from games.models import Category, Ceremony, Nomination
from tests.admin_cmds.conftest import FIXTURE


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_ceremony", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_only_the_new_id_on_stdout(db, ceremony_doc, write_json):
    out, err = run(str(write_json(ceremony_doc)))
    ceremony = Ceremony.objects.get()
    assert out == f"{ceremony.pk}\n"
    assert "Test Awards" in err and "2 categories, 3 nominations" in err
    categories = list(ceremony.categories.order_by("order"))
    assert [(c.name, c.order, c.points) for c in categories] == [
        ("Best Picture", 1, 5),
        ("Best Sound", 2, 1),
    ]
    assert [(n.title, n.subtitle, n.order) for n in categories[0].nominations.all()] == [
        ("Anora", "Sean Baker", 1),
        ("Conclave", "", 2),
    ]


def test_reimport_is_refused_and_writes_nothing(db, ceremony_doc, write_json):
    path = str(write_json(ceremony_doc))
    run(path)
    with pytest.raises(CommandError, match="already exists"):
        run(path)
    assert Ceremony.objects.count() == 1
    assert Category.objects.count() == 2


def test_reimport_without_a_date_is_refused_too(db, ceremony_doc, write_json):
    del ceremony_doc["date"]
    path = str(write_json(ceremony_doc))
    run(path)
    with pytest.raises(CommandError, match="already exists"):
        run(path)
    assert Ceremony.objects.get().date is None


def test_malformed_file_names_the_path_and_writes_nothing(db, ceremony_doc, write_json):
    ceremony_doc["categories"][1]["nominations"][0]["title"] = None
    path = write_json(ceremony_doc)
    with pytest.raises(CommandError) as excinfo:
        run(str(path))
    assert str(excinfo.value) == f"{path}: categories[1].nominations[0].title: required"
    assert not Ceremony.objects.exists()
    assert not Nomination.objects.exists()


def test_invalid_json_message(db, tmp_path):
    path = tmp_path / "broken.json"
    path.write_bytes(b'{"name": ')
    with pytest.raises(CommandError) as excinfo:
        run(str(path))
    assert str(excinfo.value) == f"{path}: not valid JSON (line 1 column 10)"


def test_missing_file(db, tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(CommandError) as excinfo:
        run(str(path))
    assert str(excinfo.value) == f"{path}: no such file"


def test_unreadable_path(db, tmp_path):
    with pytest.raises(CommandError, match="cannot be read"):
        run(str(tmp_path))  # a directory


def test_imports_the_shipped_oscars_fixture(db):
    out, _ = run(str(FIXTURE))
    ceremony = Ceremony.objects.get(pk=int(out))
    assert ceremony.categories.count() == 23
    picture = ceremony.categories.get(order=1)
    assert picture.name == "Best Picture"
    assert picture.nominations.count() == 10
    assert Nomination.objects.filter(category__ceremony=ceremony).count() == 120


def test_exit_status_is_nonzero_from_the_shell(db, tmp_path):
    # CommandError becomes exit code 1 when run as `manage.py import_ceremony`.
    utility = ManagementUtility(["manage.py", "import_ceremony", str(tmp_path / "nope.json")])
    with pytest.raises(SystemExit) as excinfo:
        utility.execute()
    assert excinfo.value.code == 1
