"""Power sources on fixture trees shaped like real Jetson, Pi 5, INA2xx and RAPL sensors."""

import sys

import pytest

from sc2deploy.errors import DeviceError, UsageError
from sc2deploy.measure.power import (INA2xx, JetsonINA3221, Pi5PMIC, RAPL, SensorUnavailable,
                                       discover, parse_pmic_adc)

from tests.helpers.sensor_trees import PMIC, hwmon_chip, tx2_iio, write


def test_tx2_iio_uses_vdd_in_without_its_sub_rails(tmp_path):
    tx2_iio(tmp_path)
    sensor = JetsonINA3221(tmp_path)
    assert len(sensor.read_rails()) == 6
    assert sensor.read_watts() == pytest.approx(4.2)


def test_orin_nano_hwmon_multiplies_mv_by_ma_and_skips_channel_7(tmp_path):
    hwmon_chip(tmp_path, "1-0040", [("VDD_IN", 5000, 1000), ("VDD_CPU_GPU_CV", 5000, 300),
                                     ("VDD_SOC", 5000, 200)], 3)
    sensor = JetsonINA3221(tmp_path)
    assert sensor.read_rails() == {"VDD_IN": 5000.0, "VDD_CPU_GPU_CV": 1500.0, "VDD_SOC": 1000.0}
    assert sensor.read_watts() == pytest.approx(5.0)


def test_agx_orin_without_vdd_in_sums_real_rails_and_skips_nc(tmp_path):
    hwmon_chip(tmp_path, "1-0040", [("VDD_GPU_SOC", 1000, 2000), ("VDD_CPU_CV", 1000, 1000),
                                     ("VIN_SYS_5V0", 5000, 400)], 1)
    hwmon_chip(tmp_path, "1-0041", [("NC", 1, 1), ("VDDQ_VDD2_1V8AO", 1000, 500), ("NC", 1, 1)], 2)
    sensor = JetsonINA3221(tmp_path)
    assert "NC" not in sensor.read_rails()
    assert sensor.read_watts() == pytest.approx(2.0 + 1.0 + 2.0 + 0.5)


def test_ina2xx_hwmon(tmp_path):
    write(tmp_path, "sys/class/hwmon/hwmon0/name", "coretemp")
    write(tmp_path, "sys/class/hwmon/hwmon1/name", "ina219")
    write(tmp_path, "sys/class/hwmon/hwmon1/power1_input", 2_750_000)
    assert INA2xx(tmp_path).read_watts() == pytest.approx(2.75)


def test_pi5_pmic_sums_rails_with_current_and_voltage():
    assert parse_pmic_adc(PMIC) == pytest.approx(0.05 * 3.7 + 0.1 * 3.3 + 2.0 * 0.75)
    with pytest.raises(SensorUnavailable, match="no rail with both"):
        parse_pmic_adc(" EXT5V_V volt(24)=5.1V\n")


def test_pi5_pmic_through_an_injected_command(tmp_path):
    script = tmp_path / "vcgencmd.py"
    script.write_text(f"print({PMIC!r})\n")
    sensor = Pi5PMIC([sys.executable, str(script)])
    assert sensor.read_watts() == pytest.approx(2.015)
    with pytest.raises(SensorUnavailable, match="failed"):
        Pi5PMIC(["/nonexistent/vcgencmd", "pmic_read_adc"])


def test_rapl_counts_across_a_wrap(tmp_path):
    zone = "sys/class/powercap/intel-rapl:0"
    write(tmp_path, f"{zone}/name", "package-0")
    write(tmp_path, f"{zone}/max_energy_range_uj", 1_000_000)
    write(tmp_path, f"{zone}/energy_uj", 900_000)
    write(tmp_path, f"{zone}/intel-rapl:0:0/energy_uj", 5)  # sub-zone: not double counted
    sensor = RAPL(tmp_path)
    write(tmp_path, f"{zone}/energy_uj", 950_000)
    assert sensor.read_joules() == pytest.approx(0.05)
    write(tmp_path, f"{zone}/energy_uj", 100_000)  # wrapped
    assert sensor.read_joules() == pytest.approx(0.05 + 0.15)


def test_unreadable_sensor_is_unavailable_with_the_reason(tmp_path):
    zone = tmp_path / "sys/class/powercap/intel-rapl:0"
    (zone / "energy_uj").mkdir(parents=True)  # unreadable as a file
    write(tmp_path, "sys/class/powercap/intel-rapl:0/max_energy_range_uj", 10)
    with pytest.raises(SensorUnavailable, match="cannot read .*energy_uj"):
        RAPL(tmp_path)
    assert issubclass(SensorUnavailable, DeviceError)  # the device, not the user's input


def test_discover_reports_why_each_source_is_missing(tmp_path):
    tx2_iio(tmp_path)
    source, reasons = discover(tmp_path)
    assert source.kind == "jetson" and reasons == {}
    source, reasons = discover(tmp_path / "empty", pmic_command=["/nonexistent/vcgencmd"])
    assert source is None
    assert set(reasons) == {"jetson", "ina2xx", "rpi5", "rapl"}
    assert "no INA3221 found" in reasons["jetson"]
    with pytest.raises(UsageError, match="unknown energy source 'gpu'"):
        discover(tmp_path, "gpu")
