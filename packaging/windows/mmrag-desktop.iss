; Inno Setup script: installs the onedir bundle (dist\mmrag-desktop) per user, with a Start
; menu entry and an uninstaller. Built by the release workflow:
;   iscc /DAppVersion=0.1.0 packaging\windows\mmrag-desktop.iss
#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif

[Setup]
AppId={{6C1F3E52-8C1B-4B7C-9A4E-0D2B7F5A9E31}
AppName=mmrag-desktop
AppVersion={#AppVersion}
AppPublisher=mmrag-desktop
DefaultDirName={localappdata}\Programs\mmrag-desktop
DefaultGroupName=mmrag-desktop
PrivilegesRequired=lowest
OutputDir=..\..\dist
OutputBaseFilename=mmrag-desktop-windows-x86_64-setup
SetupIconFile=..\mmrag-desktop.ico
UninstallDisplayIcon={app}\mmrag-desktop.exe
Compression=lzma2/max
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
WizardStyle=modern

[Files]
Source: "..\..\dist\mmrag-desktop\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\mmrag-desktop"; Filename: "{app}\mmrag-desktop.exe"
Name: "{group}\Uninstall mmrag-desktop"; Filename: "{uninstallexe}"

[Run]
Filename: "{app}\mmrag-desktop.exe"; Description: "Open mmrag-desktop"; Flags: nowait postinstall skipifsilent
