"""The SBC side of the PBX connector: what the provider's SBC must hold (one remote registration per PBX
user, routing targets for PBX locations and Microsoft's proxies), and the port through which it is driven."""
