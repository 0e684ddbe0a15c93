from tests.harness import Harness


def test_push_rotated_token(harness: Harness) -> None:
    target = harness.scenario.add_target("contoso-scim")
    harness.configure()
    result = harness.post({})
    assert result.status == 200, result.text
    assert result.result("contoso-scim")["status"] == "pushed"
    assert harness.scenario.job_token("contoso-scim") == harness.scenario.current_token(target.secret_name)
