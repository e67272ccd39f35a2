"""The local sandbox: a stand-in for the guide's AWS architecture on one machine."""
