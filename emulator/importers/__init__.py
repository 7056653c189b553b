"""Importers from source frameworks to HN + native params: parse_keras, parse_tflite."""
