"""Fixture sysfs trees and command outputs shaped like real Jetson, Pi 5 and x86 sensors."""


def write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{text}\n")


def tx2_iio(root):
    """TX2, JetPack 4: two ina3221x chips in the iio layout, VDD_IN is the board input."""
    chips = {"0-0041": [("VDD_IN", 4200), ("VDD_SYS_CPU", 900), ("VDD_SYS_DDR", 600)],
             "0-0040": [("VDD_SYS_GPU", 300), ("VDD_SYS_SOC", 700), ("VDD_4V0_WIFI", 50)]}
    for chip, rails in chips.items():
        dev = f"sys/bus/i2c/drivers/ina3221x/{chip}/iio:device{chip[-1]}"
        for n, (name, mw) in enumerate(rails):
            write(root, f"{dev}/rail_name_{n}", name)
            write(root, f"{dev}/in_power{n}_input", mw)


def hwmon_chip(root, chip, rails, hwmon):
    dev = f"sys/bus/i2c/drivers/ina3221/{chip}/hwmon/hwmon{hwmon}"
    for k, (name, mv, ma) in enumerate(rails, start=1):
        write(root, f"{dev}/in{k}_label", name)
        write(root, f"{dev}/in{k}_input", mv)
        write(root, f"{dev}/curr{k}_input", ma)
    write(root, f"{dev}/in7_label", "sum of shunt voltages")
    write(root, f"{dev}/in7_input", 99999)
    write(root, f"{dev}/curr7_input", 99999)


PMIC = """\
 3V7_WL_SW_A current(0)=0.05000000A
 3V3_SYS_A current(1)=0.10000000A
 VDD_CORE_A current(7)=2.00000000A
 3V7_WL_SW_V volt(8)=3.70000000V
 3V3_SYS_V volt(9)=3.30000000V
 VDD_CORE_V volt(15)=0.75000000V
 EXT5V_V volt(24)=5.10000000V
 BATT_V volt(25)=0.00000000V
"""
