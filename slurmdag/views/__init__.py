"""Pure presentation: records in, text out (tables, trees, dot, mermaid). Nothing here prints or talks to Slurm."""
