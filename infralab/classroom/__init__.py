"""The classroom at scale: a class's measurements pooled (collector + ``share``), and sizing.

* :mod:`infralab.classroom.validate`: what the collector accepts (the typed records of
  :mod:`infralab.results`, plus the checks a public endpoint needs on top of them);
* :mod:`infralab.classroom.store`: the class database (SQLite by default);
* :mod:`infralab.classroom.service`: the FastAPI collector (``python -m infralab collector``);
* :mod:`infralab.classroom.client`: ``python -m infralab share``, the student's opt-in upload;
* :mod:`infralab.classroom.room`: the room as a table (instructor notebook; its charts are
  :mod:`infralab.charts.classroom`);
* :mod:`infralab.classroom.sizing`: nodes and cost of a JupyterHub for N students.
"""
