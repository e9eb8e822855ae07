"""Environments: single- and multi-turn episodes the policy acts in (issue 18)."""
