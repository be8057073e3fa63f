# Written by straas's pre_configure on each node: one class per configuration section.
