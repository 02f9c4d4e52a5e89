"""Imports the example DAG with a DagBag (no import errors), then runs it end to end with
dag.test() and prints the state of the run and of every task instance as JSON.

    run_dag.py DAG_FOLDER CONF_JSON
"""
import importlib.util, json, sys
from airflow.models.dagbag import DagBag
folder, conf = sys.argv[1], json.loads(sys.argv[2])
bag = DagBag(dag_folder=folder)
assert bag.import_errors == {}, bag.import_errors
assert "cd_pipeline" in bag.dag_ids, bag.dag_ids
spec = importlib.util.spec_from_file_location("cd_pipeline_dag", f"{folder}/cd_pipeline_dag.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
run = module.dag.test(run_conf=conf)
states = {}
for ti in run.get_task_instances():
    states.setdefault(ti.task_id, []).append(str(ti.state))
print(json.dumps({"run": str(run.state), "tasks": states}))
