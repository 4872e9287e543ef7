"""Planner: ranks CCTV/ANPR camera sites from crime density and road coverage (issue "# 3")."""
