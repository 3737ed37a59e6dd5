"""CROMA encoders: architecture, ALiBi biases, weight loading and preprocessing."""
