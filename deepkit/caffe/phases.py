"""Caffe's phase rules: which layers a net has in a given NetState (phase, level, stages)."""
from .shapes import CaffeRuleError

__all__ = ["state_meets_rule", "layer_included"]


def state_meets_rule(phase, level, stages, rule):
    """Caffe's ``Net::StateMeetsRule``.

    Args:
        phase: ``'TEST'`` or ``'TRAIN'``.
        level: The NetState level.
        stages: The NetState stages (a set).
        rule: A NetStateRule message.

    Returns:
        Whether the state meets every condition of the rule.
    """
    if rule.has("phase") and rule.phase != phase:
        return False
    if rule.has("min_level") and level < int(rule.min_level):
        return False
    if rule.has("max_level") and level > int(rule.max_level):
        return False
    for st in rule.stage:
        if st not in stages:
            return False
    for st in rule.not_stage:
        if st in stages:
            return False
    return True


def layer_included(layer, phase, level, stages):
    """Caffe's ``Net::FilterNet`` for one layer: its ``include``/``exclude`` rules.

    Args:
        layer: A LayerParameter message.
        phase, level, stages: The NetState (see :func:`state_meets_rule`).

    Returns:
        Whether the layer is part of the net in that state.

    Raises:
        CaffeRuleError: The layer has both include and exclude rules.
    """
    include, exclude = list(layer.include), list(layer.exclude)
    if include and exclude:
        raise CaffeRuleError("specify either include rules or exclude rules; not both")
    included = not include
    for rule in exclude:
        if state_meets_rule(phase, level, stages, rule):
            included = False
    for rule in include:
        if state_meets_rule(phase, level, stages, rule):
            included = True
    return included
