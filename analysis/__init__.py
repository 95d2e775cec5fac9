"""Figures and tables of the paper rebuilt from run directories (docs/contracts.md, section 2).

    runs.py     read run directories into `Run`s and pandas frames
    paper.py    the paper's numbers, each with the table it comes from
    rules.py    the one rule for compared runs, a metric's better direction and verdicts over seeds
    claims.py   the claims table: every claim of the paper the suite addresses, with its verdict
    tables.py   headline, Table 5, Table 7, Tables 8-9, the long-range table (Markdown + CSV)
    figures.py  Figure 2, Supplementary Figure 6, Figures 3, 4, 5 (PNG)
    report.py   everything the runs allow, plus index.md; cli.py is `ctbench report`

Reads files only: nothing here imports torch or the training code.
"""
