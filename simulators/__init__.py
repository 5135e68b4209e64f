"""Simulators (`baocao.simulators`): test doubles of the one-stop system, a legacy database, the file drops
and the central sandbox, and the demo. A development install has them; the wheel and the image do not,
and production code never imports them."""
