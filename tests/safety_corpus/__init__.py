"""Corpora for the safety rules: real DDL on this machine, a generated labelled history."""
