"""Reusable building blocks: norms, temporal conv nets, encoders/decoders, visual frontends, fusion."""
