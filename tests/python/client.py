"""pgworld from Python: start a WDK workflow, resume its hook and read its output, all in SQL.

usage: client.py DATABASE_URL WORKFLOW_ID HOOK_TOKEN  (prints one JSON line per step)
"""

import json
import sys
import time

import psycopg2
import psycopg2.extras


def main(url: str, workflow: str, token: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    psycopg2.extras.register_default_jsonb(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT workflow.start(%s, %s::jsonb)", (workflow, json.dumps([token])))
        run_id = cur.fetchone()[0]["runId"]
        print(json.dumps({"started": run_id}), flush=True)
        resumed = None
        deadline = time.monotonic() + 60
        while resumed is None:
            try:
                cur.execute("SELECT workflow.hook_resume(%s, %s::jsonb)", (token, json.dumps({"approved": True, "by": "python"})))
                resumed = cur.fetchone()[0]
            except psycopg2.Error as e:
                # The run has not created its hook yet.
                if e.pgcode != "WF404" or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        print(json.dumps({"resumed": resumed["hookId"]}), flush=True)
        while True:
            try:
                cur.execute("SELECT workflow.run_output(%s)", (run_id,))
                print(json.dumps(cur.fetchone()[0]), flush=True)
                return
            except psycopg2.Error as e:
                if e.pgcode != "WF425" or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
