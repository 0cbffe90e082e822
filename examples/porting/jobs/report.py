#!/usr/bin/env python3
#SBATCH --ntasks=1 --mem=100M
#SBATCH --time=5
"""Summarise the run."""
import os

print(f"report for job {os.environ.get('SLURM_JOB_ID')}")
