"""Analysis passes: shapes, costs (MACs, FLOPs, basic operations), and more."""
