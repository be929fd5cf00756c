from geoservice import create_app


def test_healthz_reports_database_and_postgis_versions(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"]["postgresql"].startswith("PostgreSQL")
    assert body["database"]["postgis"][0].isdigit()


def test_healthz_is_503_json_without_stack_trace_when_database_is_unreachable(tmp_path):
    app = create_app(
        {
            "DATABASE_URL": f"postgresql+psycopg2://nobody@/nowhere?host={tmp_path}",
            "TESTING": True,
            "SECRET_KEY": "x",
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "数据库不可用"
    assert "Traceback" not in response.get_data(as_text=True)


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.is_json and response.get_json()["error"] == "未找到"
