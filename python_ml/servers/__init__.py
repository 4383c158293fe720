"""Local servers that reproduce the production setup on one machine.

- :mod:`python_ml.servers.metastore`: a Derby network server that stores the
  Hive metastore shared by the Thrift server, dbt and the training job.
- :mod:`python_ml.servers.thrift`: a Spark Thrift Server for dbt's ``thrift``
  target.
- :mod:`python_ml.servers.cluster`: a Spark standalone master and worker, and
  ``spark-submit`` of the ``musicbox`` command line to them.

Every server binds to 127.0.0.1 and keeps its pid file and log under
``$MUSICBOX_DATA_DIR/servers/<name>/``.
"""
