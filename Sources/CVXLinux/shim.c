#include "CVXLinux.h"
