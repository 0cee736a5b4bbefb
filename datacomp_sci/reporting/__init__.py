"""Stage 6: aggregate scores, the paper's tables and figure, leaderboard submissions."""
