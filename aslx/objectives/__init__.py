"""Training objectives: CTC, distillation from a teacher, classification."""
