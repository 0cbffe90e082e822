"""Leaf types every layer shares: errors, the compiled plan, Slurm states, Slurm value syntax, the
sbatch option table.
"""
