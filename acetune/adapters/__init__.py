"""Adapters on the decoder: LoRA/DoRA (PEFT), LoKr/LoHa (LyCORIS) and full fine-tuning."""
