"""Run.result_counts: a run's results by agent and status, kept by sync. The runs stored
before are counted once here, set-based."""

from django.db import migrations, models


def count_stored_runs(apps, schema_editor):
    # The same statement as the repair (runs.services.sql.run_counts_rebuild), frozen here.
    db = schema_editor.connection
    grouped = (
        "SELECT agent_id, status, COUNT(*) AS n, "
        "SUM(CASE WHEN is_data_driven THEN 1 ELSE 0 END) AS dd "
        "FROM runs_executionresult WHERE run_id = runs_run.id GROUP BY agent_id, status"
    )
    if db.vendor == "postgresql":
        counts = (
            "SELECT COALESCE(jsonb_agg(jsonb_build_array(status, agent_id, n, dd) "
            f"ORDER BY COALESCE(agent_id, 0), status), '[]'::jsonb) FROM ({grouped}) g"
        )
    else:
        counts = (
            "SELECT json_group_array(json_array(status, agent_id, n, dd)) FROM "
            f"({grouped} ORDER BY COALESCE(agent_id, 0), status) g"
        )
    schema_editor.execute(f"UPDATE runs_run SET result_counts = ({counts})")


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0017_result_case_cause_idx"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="result_counts",
            field=models.JSONField(blank=True, default=None, editable=False, null=True),
        ),
        migrations.RunPython(count_stored_runs, migrations.RunPython.noop, elidable=True),
    ]
