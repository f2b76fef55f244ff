"""The suite's own xdist scheduling (tests/conftest.py): each backend's tests form one group, and the groups go
out longest first so that no long module is left to run alone at the end."""

from tests.conftest import xdist_group_of, xdist_order


def test_each_backend_is_one_group_and_other_tests_go_by_module() -> None:
    assert xdist_group_of("tests/api/test_x.py::test_a[sqlite]") == "backend-sqlite"
    assert xdist_group_of("tests/api/test_x.py::test_a[postgresql-case]") == "backend-postgresql"
    assert xdist_group_of("tests/unit/test_y.py::test_b[case]") == "tests/unit/test_y.py"
    assert xdist_group_of("tests/unit/test_y.py::test_c") == "tests/unit/test_y.py"


def test_modules_that_start_their_own_server_go_by_module_whatever_the_backend() -> None:
    assert xdist_group_of("tests/e2e/test_serve.py::test_a[sqlite]") == "tests/e2e/test_serve.py"
    assert xdist_group_of("tests/e2e/test_serve.py::test_a[postgresql]") == "tests/e2e/test_serve.py"
    assert xdist_group_of("tests/e2e/test_serve_other.py::test_a[postgresql]") == "backend-postgresql"


def test_the_longest_backend_module_goes_apart_from_its_backend_as_a_group_per_backend() -> None:
    assert xdist_group_of("tests/cli/test_bulk_import_1000.py::test_a[sqlite]") == "tests/cli/test_bulk_import_1000.py[sqlite]"
    assert xdist_group_of("tests/cli/test_bulk_import_1000.py::test_b[postgresql]") == "tests/cli/test_bulk_import_1000.py[postgresql]"
    assert xdist_group_of("tests/cli/test_other.py::test_a[sqlite]") == "backend-sqlite"


def test_backends_go_out_first_then_the_apart_groups_then_modules_that_start_processes_then_the_rest() -> None:
    sizes = {"tests/unit/test_api_transactions.py": 54, "backend-sqlite": 134, "tests/e2e/test_fleet.py": 1,
             "tests/unit/test_logging.py": 17, "backend-postgresql": 136, "tests/sbc/test_kamailio_sbc.py": 3,
             "tests/cli/test_bulk_import_1000.py[sqlite]": 2}
    assert sorted(sizes, key=lambda scope: xdist_order(scope, sizes[scope])) == [
        "backend-postgresql", "backend-sqlite", "tests/cli/test_bulk_import_1000.py[sqlite]",
        "tests/sbc/test_kamailio_sbc.py", "tests/e2e/test_fleet.py", "tests/unit/test_api_transactions.py",
        "tests/unit/test_logging.py"]
