import CVXLinux
