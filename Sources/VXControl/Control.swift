import VXWire
