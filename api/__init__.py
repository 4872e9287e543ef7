"""FastAPI service for operators, planners and engineers (issue "# 4")."""
