"""A shared GPU fleet on a real distributed engine: Ray Core for jobs, Ray Serve for replicas.

``cluster``: start and stop a local Ray cluster with GPUs declared as logical resources,
its expected memory footprint, and a check that no Ray process outlives it. ``packing``:
what should run where (first-fit packing of fractional GPU demands), in plain Python.
``scheduler``: jobs that really run on Ray, queue, and get packed onto logical GPUs; a
day of mixed traffic and the utilization it reaches. ``serving``: the kit's embeddings app
as a Ray Serve deployment with autoscaling replicas.

Ray is an optional extra (``pip install 'infralab[fleet]'``); these modules import it lazily.
"""
