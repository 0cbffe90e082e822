"""Porting: hand-written bash sbatch chains -> workflow YAML."""
