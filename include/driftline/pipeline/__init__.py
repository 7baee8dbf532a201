"""What a DAG task or the CLI calls for one interval: ``interval`` (each stage's entry point and
``monitor_interval``, all stages in order), ``stage`` (a stage under the interval's lease),
``records`` (the run record, its digest and executions), ``reevaluate`` (late labels
re-judging earlier intervals), ``summary`` (the block each task logs), ``check`` (the run's
last word: a failed stage fails the run).
"""
