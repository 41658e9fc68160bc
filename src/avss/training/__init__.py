"""Lightning glue: the task module (loss, metrics, optimisers, logging) and its helpers."""
