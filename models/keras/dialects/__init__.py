"""Keras 2 and tf.keras model JSON rewritten as the Keras 3 JSON that ``model_from_json`` reads."""
