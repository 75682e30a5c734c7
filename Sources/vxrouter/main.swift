print("vxrouter")
